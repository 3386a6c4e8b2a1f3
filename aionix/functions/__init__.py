"""AionixFn: serverless functions in Python, Deno and WASM.

Functions have immutable versions (code + configuration snapshot + sha256), aliases that point
at one version or split traffic between two, and run confined: Python and Deno in warm worker
subprocesses (rlimits, unprivileged uid, network namespace, cgroups where the host allows),
WASM in-process in wasmtime with epoch deadlines and memory limits.
"""
