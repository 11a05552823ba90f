"""Subscription lifecycle worker for SaaS offers sold through Microsoft's commercial marketplace."""

__version__ = "0.1.0"
