// Message streams (DESIGN §2): a NATS JetStream stream read as a source.
//
// Each read positions Sluice's own durable pull consumer just after the
// stream sequence the table's publication holds (the consumer is made
// again each read, so messages a crashed run took are never in flight
// when the next one starts: delivery is in stream order, with no gaps),
// fetches up to max_messages and writes them, micro-batched, into one raw
// object. The messages are acknowledged (AckAll, through the last one)
// only after the publication commits (Ack); a crash before that leaves
// them to be read again, and the sequence stored with the publication
// tells which of them it already holds.
//
// The raw object is NDJSON, a line a message, in the `messages` decoder's
// form: {"_stream_seq":N,"_subject":"...","_published_at":"...","_data":D}
// where D is the payload itself when it is a JSON object (its bytes kept,
// line breaks, which JSON allows only as white space, made spaces), else
// {"value": payload} for other JSON, {"text": "..."} for other UTF-8 text
// and {"base64": "..."} for bytes.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace sluice {

struct StreamRequest {
  std::string url;       // nats://host:port (credentials substituted)
  std::string stream;    // the JetStream stream
  std::string subject;   // a filter subject; "" = the whole stream
  std::string consumer;  // the durable consumer Sluice owns
  uint64_t after = 0;    // the last sequence the table holds (0: none)
  int64_t max_messages = 100000;
  int64_t wait_ms = 1000;  // how long a fetch waits for messages to arrive
  int64_t ack_wait_seconds = 1800;
  std::string path;  // where the raw object is written
  const std::atomic<bool>* cancel = nullptr;
};

struct StreamState {
  uint64_t first_seq = 0, last_seq = 0, messages = 0;
  bool limits = true;   // limits retention (not interest or work queue)
  int64_t created = 0;  // when the stream was made (ns since the epoch)
};

class StreamBatch {
 public:
  StreamBatch();
  ~StreamBatch();
  StreamBatch(StreamBatch&&) noexcept;
  StreamBatch& operator=(StreamBatch&&) noexcept;

  int64_t messages = 0;
  uint64_t first_seq = 0, last_seq = 0;  // 0 when none
  bool more = false;                     // max_messages stopped it
  std::string sha256;
  uint64_t bytes = 0;
  std::vector<std::string> notes;

  // Acknowledges every message fetched (after the publication committed).
  Status Ack();

  struct Held;
  std::unique_ptr<Held> held;
};

// Reads the stream's next messages into req.path. Errors name the server
// (without credentials) and what to do; nothing is left at req.path then.
Result<StreamBatch> FetchStream(const StreamRequest& req);
// The stream's sequences now, for `plan`.
Result<StreamState> InspectStream(const StreamRequest& req);
// The URL as it may be shown: without user and password.
std::string DisplayStreamUrl(const std::string& url);
// Registers the URL's password or token (each of a comma list) with the
// redactor, so that no error, log or answer shows it.
void RegisterStreamSecrets(const std::string& url);

class Decoder;
// The `messages` format (above), for the decoder registry.
std::unique_ptr<Decoder> NewMessagesDecoder();

}  // namespace sluice
