"""The domain: values, events and the lifecycle table. Standard library only."""
