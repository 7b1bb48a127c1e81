"""Files generated from the code: the contracts' vocabulary (from the orders transition
table) and the AsyncAPI document of the event catalogue (``make contracts``)."""
