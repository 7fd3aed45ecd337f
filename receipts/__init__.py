"""The delivery-status receiver: completes outcome records from COSMOS's receipts, serves health and metrics."""

from receipts.app import create_app

__all__ = ["create_app"]
