"""The soak: the worker under every fault we know, and the promise checked at the end (`make soak`)."""
