"""The inventory of mirrors and how a mirror joins it.

Pure: `model` (the TOML model and its validation), `addresses` (what a mirror's address and
admin may be), `countries` (ISO 3166), `registration` (the registration mail), `golive` (the
checks before a mirror goes live), `edits` (text edits that keep the operator's comments).
Entry: `onboarding` (``syncd mirrors register|check|trust``, the promotion after a first
publish)."""
