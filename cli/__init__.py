"""The `cosmos-sms` command line."""
