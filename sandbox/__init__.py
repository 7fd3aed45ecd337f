"""The COSMOS sandbox: a fast, spec-faithful simulator of the COSMOS SMS API for tests and development.

sandbox.faults      fault settings, scripted outcomes, magic numbers, status table
sandbox.inspection  counters, ring buffers and (to, text) counts behind /_sandbox/
sandbox.receipts    delivery-status callbacks with retries
sandbox.app         the aiohttp application: /v1.0/sms/ and the /_sandbox/ endpoints
sandbox.server      run the application (uvloop when available)
sandbox.control     a small `requests` client for the /_sandbox/ endpoints
"""
