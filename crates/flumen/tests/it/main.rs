//! End-to-end tests: each starts the real `flumen` binary on a real configuration file and
//! talks to it through real sockets, files and processes.

mod util;

mod avro_client;
mod config_check;
mod console;
mod fanout;
mod file_channel;
mod http_sink;
mod http_source;
mod interceptors;
mod lifecycle;
mod log_files;
mod metrics;
mod reload;
mod rpc_avro;
mod rpc_thrift;
mod sink_groups;
mod syslog;
mod tiers;
