"""What each mirror served, as its client counts it from the web server's access log
(``ACCESS_LOG=``, the report's ``traffic``): read tolerantly and bounded (`figures`, pure),
recorded per mirror per report (`store`), summed per day for the status site, status.json
and the metrics; and the guide's ``/local_stats/``, which must refuse access without the
account's credentials (`localstats`, pure)."""
