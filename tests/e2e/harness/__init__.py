"""Test harness for the awf-proxy end-to-end suite: a loopback DNS server,
origin servers, a proxy process wrapper and raw-socket clients."""
