"""The client's decisions, pure: plain functions over plain data, no I/O, no clock, no process.

``tests/client/test_purity.py`` checks every module here. The wire formats shared with syncd
(request, report, CVD header, authorized_keys lines) are ``pushwire``'s.
"""
