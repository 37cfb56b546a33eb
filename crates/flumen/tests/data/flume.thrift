// Flume's Thrift RPC interface (ThriftSourceProtocol), written for flumen from the protocol
// facts (field ids, types, enum values, method names); the interop test compiles it with
// Apache Thrift's own compiler (`thrift --gen py`) to get an independent client and server.

namespace java org.apache.flume.thrift

struct ThriftFlumeEvent {
  1: required map<string, string> headers,
  2: required binary body,
}

enum Status {
  OK = 0,
  FAILED = 1,
  ERROR = 2,
  UNKNOWN = 3,
}

service ThriftSourceProtocol {
  Status append(1: ThriftFlumeEvent event),
  Status appendBatch(1: list<ThriftFlumeEvent> events),
}
