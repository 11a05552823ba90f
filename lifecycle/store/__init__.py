"""The subscription store adapter: `table.TableSubscriptionStore` on Azure Table Storage.

`codec` (entities <-> domain values, the row layout) imports only the standard library,
so the in-memory fake can share it without pulling in the Azure SDK.
"""
