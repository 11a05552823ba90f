"""Queue adapters: Service Bus in Azure (the local runtime uses lifecycle.local.queue)."""
