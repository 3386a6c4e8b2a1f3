"""AionixFn: serverless functions in Python, Deno and WASM.

Functions have immutable versions (code + configuration snapshot + sha256), aliases that point
at one version or split traffic between two, and run confined, never in the server process:
Python, Deno and WASM (wasmtime, with epoch deadlines and memory limits) in warm worker
subprocesses (rlimits, unprivileged uid, network/mount/PID namespaces, cgroups where the host
allows).
"""
