"""DNS: the ``db.XY`` rotation pools and the ``current.cvd`` TXT record, and the promise they
keep (no client is sent to a mirror lacking what the TXT announces).

Pure: `plan` (pools, TXT, safety checks), `steps` (the update as shrink, settle, announce),
`gate` (the release gate and its one evidence rule), `geopools` (db.local by region, BIND
views), `config` (``[dns]``). I/O: `server` (RFC 2136 and reads, dnspython), `store` (the DNS
part of the record). Entry: `update` (``syncd dns push|render``, the gate after a publish, the
monitor's rotation)."""
