"""The REST API (``prodcat serve``, ``docs/api.md``): the FastAPI app (:mod:`.app`) around a service that reads
products, predicts and records reviews without HTTP (:mod:`.service`); the request and response bodies
(:mod:`.schemas`), reading and limiting inputs (:mod:`.inputs`, :mod:`.forms`), the settings (:mod:`.settings`),
the guard around every request (:mod:`.middleware`), dynamic batching (:mod:`.batching`), worker threads
(:mod:`.threads`), logs and metrics (:mod:`.logs`, :mod:`.metrics`) and the command (:mod:`.command`)."""
