//! Avro RPC: being written (next session).
