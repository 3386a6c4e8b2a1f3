"""Generated protobuf messages of proto/aion/v1/tasks.proto (see its header to regenerate; do not edit)."""
