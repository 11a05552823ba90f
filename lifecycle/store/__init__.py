"""The subscription store adapter: `table.TableSubscriptionStore` on Azure Table Storage.

`keys` (where each row of a subscription lives), `codec` (its state, history and delivery
rows), `ledger` (reconciliation's rows), `index` (the ops index's rows) and `properties`
import only the standard library, so the in-memory fake can share them without pulling in
the Azure SDK.
"""
