"""The provider: COSMOS message rules, status table, callback tokens and the HTTP client."""
