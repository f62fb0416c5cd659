"""The federation of datacenters in simulation (``[federation] enabled = true``)."""
