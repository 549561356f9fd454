// NATS JetStream through the NATS C client (libnats): see stream_nats.h.
#include "ingest/stream_nats.h"

#include <fcntl.h>
#include <nats/nats.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/hash.h"
#include "core/redact.h"
#include "core/strings.h"
#include "ingest/database.h"
#include "ingest/decoder.h"

namespace sluice {

std::string DisplayStreamUrl(const std::string& url) {
  // nats://user:pass@host:port, or several such, comma-separated.
  std::vector<std::string> shown;
  for (const std::string& one : Split(url, ',')) {
    std::string u = Trim(one);
    size_t scheme = u.find("://");
    size_t start = scheme == std::string::npos ? 0 : scheme + 3;
    // The user information ends at the authority's last '@' (a password
    // may hold '@' and '/' unescaped).
    size_t at = u.rfind('@');
    if (at != std::string::npos && at >= start) u = u.substr(0, start) + u.substr(at + 1);
    shown.push_back(u);
  }
  return Join(shown, ",");
}

void RegisterStreamSecrets(const std::string& url) {
  for (const std::string& one : Split(url, ',')) {
    std::string u = Trim(one);
    size_t scheme = u.find("://");
    size_t start = scheme == std::string::npos ? 0 : scheme + 3;
    size_t at = u.rfind('@');
    if (at == std::string::npos || at < start) continue;
    std::string userinfo = u.substr(start, at - start);
    size_t colon = userinfo.find(':');
    // user:password, or a token alone.
    std::string secret = colon == std::string::npos ? userinfo : userinfo.substr(colon + 1);
    if (!secret.empty()) {
      RegisterSecretForm(secret);
      RegisterSecretForm(PercentDecode(secret));
    }
  }
}

namespace {

Status NatsError(const StreamRequest& req, const std::string& what, natsStatus s,
                 jsErrCode code = static_cast<jsErrCode>(0)) {
  std::string detail = natsStatus_GetText(s);
  const char* last = nats_GetLastError(nullptr);
  if (last && *last && detail.find(last) == std::string::npos) detail += ": " + std::string(last);
  if (code != 0) detail += fmt::format(" (JetStream error {})", static_cast<int>(code));
  std::string hint;
  if (s == NATS_NO_SERVER || s == NATS_CONNECTION_CLOSED || s == NATS_TIMEOUT) {
    hint = " (is nats-server running with JetStream (-js), and is the url right?)";
  }
  if (code == JSStreamNotFoundErr || s == NATS_NOT_FOUND) {
    hint = " (check stream: — the stream must exist; Sluice reads it, it does not create it)";
  }
  return Status::DataError(Redact(what + " (" + DisplayStreamUrl(req.url) + " stream " +
                                  req.stream + "): " + detail + hint));
}

// The libnats objects of one read, destroyed in order.
struct Conn {
  natsOptions* opts = nullptr;
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  ~Conn() {
    if (js) jsCtx_Destroy(js);
    if (nc) natsConnection_Destroy(nc);
    if (opts) natsOptions_Destroy(opts);
  }
};

Status Connect(const StreamRequest& req, Conn& c) {
  natsStatus s = natsOptions_Create(&c.opts);
  if (s == NATS_OK) s = natsOptions_SetURL(c.opts, req.url.c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(c.opts, 10000);
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(c.opts, 0);
  if (s != NATS_OK) return NatsError(req, "bad NATS url or options", s);
  s = natsConnection_Connect(&c.nc, c.opts);
  if (s != NATS_OK) return NatsError(req, "cannot connect to NATS", s);
  jsOptions o;
  jsOptions_Init(&o);
  o.Wait = 10000;
  s = natsConnection_JetStream(&c.js, c.nc, &o);
  if (s != NATS_OK) return NatsError(req, "cannot open JetStream", s);
  return Status::Ok();
}

Result<StreamState> StreamInfo(const StreamRequest& req, Conn& c) {
  jsStreamInfo* si = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, c.js, req.stream.c_str(), nullptr, &code);
  if (s != NATS_OK) return NatsError(req, "cannot read the stream", s, code);
  StreamState st;
  st.first_seq = si->State.FirstSeq;
  st.last_seq = si->State.LastSeq;
  st.messages = si->State.Msgs;
  st.limits = si->Config == nullptr || si->Config->Retention == js_LimitsPolicy;
  st.created = si->Created;
  jsStreamInfo_Destroy(si);
  return st;
}

// Well-formed UTF-8 (no overlong forms, surrogates or values past U+10FFFF).
bool IsUtf8(const char* p, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(p[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > n) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < len; ++k) {
      unsigned char b = static_cast<unsigned char>(p[i + k]);
      if ((b >> 6) != 2) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

// "2024-01-02 03:04:05.123456" from nanoseconds since the epoch (UTC).
std::string Timestamp(int64_t ns) {
  std::string s = FormatTimestamp(ns / 1000);  // 2024-01-02T03:04:05.123Z
  std::string micros = fmt::format("{:06d}", static_cast<int>((ns / 1000) % 1000000));
  if (s.size() >= 19) s = s.substr(0, 10) + " " + s.substr(11, 8) + "." + micros;
  return s;
}

// One message as a line of the raw object.
std::string Line(uint64_t seq, const char* subject, int64_t ns, const char* data, size_t n) {
  std::string line =
      fmt::format("{{\"_stream_seq\":{},\"_subject\":{},\"_published_at\":\"{}\",\"_data\":", seq,
                  nlohmann::json(std::string(subject))
                      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  Timestamp(ns));
  std::string_view payload(data, n);
  size_t first = payload.find_first_not_of(" \t\r\n");
  bool utf8 = IsUtf8(data, n);
  nlohmann::json parsed = utf8 && first != std::string_view::npos
                              ? nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false)
                              : nlohmann::json(nlohmann::json::value_t::discarded);
  if (!parsed.is_discarded()) {
    std::string body(payload);
    // JSON allows a line break only as white space: a space keeps the value.
    for (char& ch : body) {
      if (ch == '\n' || ch == '\r') ch = ' ';
    }
    // An object whose keys are the envelope's own would give a column twice.
    bool clash =
        parsed.is_object() && (parsed.contains("_stream_seq") || parsed.contains("_subject") ||
                               parsed.contains("_published_at"));
    if (parsed.is_object() && !clash) {
      line += body;
    } else {
      line += "{\"value\":" + body + "}";
    }
  } else if (utf8) {
    line += "{\"text\":" +
            nlohmann::json(std::string(payload))
                .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
            "}";
  } else {
    line += "{\"base64\":\"" + Base64Encode(payload) + "\"}";
  }
  line += "}\n";
  return line;
}

}  // namespace

struct StreamBatch::Held {
  std::unique_ptr<Conn> conn;
  natsSubscription* sub = nullptr;
  natsMsg* last = nullptr;  // acknowledging it acknowledges all before it (AckAll)
  StreamRequest req;
  ~Held() {
    if (last) natsMsg_Destroy(last);
    if (sub) natsSubscription_Destroy(sub);
  }
};

StreamBatch::StreamBatch() = default;
StreamBatch::~StreamBatch() = default;
StreamBatch::StreamBatch(StreamBatch&&) noexcept = default;
StreamBatch& StreamBatch::operator=(StreamBatch&&) noexcept = default;

Status StreamBatch::Ack() {
  if (!held || !held->last) return Status::Ok();
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = natsMsg_AckSync(held->last, nullptr, &code);
  if (s != NATS_OK) {
    return NatsError(held->req, "cannot acknowledge the messages read", s, code);
  }
  natsMsg_Destroy(held->last);
  held->last = nullptr;
  return Status::Ok();
}

Result<StreamState> InspectStream(const StreamRequest& req) {
  RegisterStreamSecrets(req.url);
  Conn c;
  RETURN_IF_ERROR(Connect(req, c));
  return StreamInfo(req, c);
}

Result<StreamBatch> FetchStream(const StreamRequest& req) {
  RegisterStreamSecrets(req.url);
  StreamBatch batch;
  batch.held = std::make_unique<StreamBatch::Held>();
  batch.held->req = req;
  batch.held->conn = std::make_unique<Conn>();
  Conn& c = *batch.held->conn;
  RETURN_IF_ERROR(Connect(req, c));
  ASSIGN_OR_RETURN(StreamState state, StreamInfo(req, c));
  if (!state.limits) {
    return Status::Invalid("stream " + req.stream +
                           " keeps messages by interest or as a work queue: Sluice reads streams "
                           "with limits retention (its reads must be repeatable after a crash); "
                           "read a limits stream that sources it");
  }
  if (req.after > state.last_seq) {
    return Status::DataError(fmt::format(
        "stream {} ends at sequence {}, before the {} the table holds: it was purged or made "
        "again; read it from its start with sluice run SOURCE --full-refresh",
        req.stream, state.last_seq, req.after));
  }
  if (req.after + 1 < state.first_seq && state.messages > 0) {
    batch.notes.push_back(fmt::format(
        "the stream no longer holds messages {} to {} (its retention removed them before "
        "they were read); reading from {}",
        req.after + 1, state.first_seq - 1, state.first_seq));
  }
  // The consumer is made again, just after what the table holds: nothing a
  // crashed read took is in flight, and delivery has no gaps.
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_DeleteConsumer(c.js, req.stream.c_str(), req.consumer.c_str(), nullptr, &code);
  if (s != NATS_OK && s != NATS_NOT_FOUND && code != JSConsumerNotFoundErr) {
    return NatsError(req, "cannot reset consumer " + req.consumer, s, code);
  }
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = req.consumer.c_str();
  cc.AckPolicy = js_AckAll;
  cc.AckWait = req.ack_wait_seconds * int64_t{1000000000};
  cc.MaxAckPending = std::max<int64_t>(req.max_messages, 1000);
  cc.MaxDeliver = -1;
  if (!req.subject.empty()) cc.FilterSubject = req.subject.c_str();
  if (req.after > 0) {
    cc.DeliverPolicy = js_DeliverByStartSequence;
    cc.OptStartSeq = req.after + 1;
  } else {
    cc.DeliverPolicy = js_DeliverAll;
  }
  jsConsumerInfo* ci = nullptr;
  code = static_cast<jsErrCode>(0);
  s = js_AddConsumer(&ci, c.js, req.stream.c_str(), &cc, nullptr, &code);
  if (s != NATS_OK) return NatsError(req, "cannot create consumer " + req.consumer, s, code);
  uint64_t pending = ci->NumPending;
  jsConsumerInfo_Destroy(ci);
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = req.stream.c_str();
  so.Consumer = req.consumer.c_str();
  so.ManualAck = true;
  code = static_cast<jsErrCode>(0);
  s = js_PullSubscribe(&batch.held->sub, c.js, req.subject.empty() ? nullptr : req.subject.c_str(),
                       req.consumer.c_str(), nullptr, &so, &code);
  if (s != NATS_OK) return NatsError(req, "cannot subscribe to consumer " + req.consumer, s, code);

  int fd = ::open(req.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError("cannot create " + req.path + ": " + std::strerror(errno));
  Sha256 hash;
  std::string buffer;
  Status failed = Status::Ok();
  auto flush = [&]() {
    size_t off = 0;
    while (off < buffer.size() && failed.ok()) {
      ssize_t n = ::write(fd, buffer.data() + off, buffer.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) failed = Status::IOError("writing " + req.path + ": " + std::strerror(errno));
      if (n > 0) off += static_cast<size_t>(n);
    }
    buffer.clear();
  };
  // Up to the cap, or until the consumer had nothing more pending when it
  // was made and since (a live stream is not chased for ever).
  while (failed.ok() && batch.messages < req.max_messages && pending > 0) {
    if (req.cancel && req.cancel->load()) {
      failed = Status::Cancelled("the run was cancelled while reading stream " + req.stream);
      break;
    }
    natsMsgList list{nullptr, 0};
    int want = static_cast<int>(std::min<int64_t>(1000, req.max_messages - batch.messages));
    code = static_cast<jsErrCode>(0);
    s = natsSubscription_Fetch(&list, batch.held->sub, want, req.wait_ms, &code);
    if (s == NATS_TIMEOUT) break;  // nothing arrived in time
    if (s != NATS_OK) {
      failed = NatsError(req, "cannot fetch messages", s, code);
      break;
    }
    for (int i = 0; i < list.Count && failed.ok(); ++i) {
      natsMsg* m = list.Msgs[i];
      jsMsgMetaData* meta = nullptr;
      if (natsMsg_GetMetaData(&meta, m) != NATS_OK) continue;  // not a JetStream message
      uint64_t seq = meta->Sequence.Stream;
      int64_t ns = meta->Timestamp;
      pending = meta->NumPending;
      jsMsgMetaData_Destroy(meta);
      // Held already, or delivered again within this read (a slow read
      // past AckWait): once only.
      if (seq <= std::max(req.after, batch.last_seq)) continue;
      try {
        buffer += Line(seq, natsMsg_GetSubject(m), ns, natsMsg_GetData(m),
                       static_cast<size_t>(natsMsg_GetDataLength(m)));
      } catch (const std::exception& e) {
        failed = Status::DataError(
            fmt::format("stream {}: message {} cannot be written: {}", req.stream, seq, e.what()));
        break;
      }
      ++batch.messages;
      if (batch.first_seq == 0) batch.first_seq = seq;
      batch.last_seq = std::max(batch.last_seq, seq);
      if (buffer.size() > (1 << 20)) {
        hash.Update(buffer);
        batch.bytes += buffer.size();
        flush();
      }
    }
    // Keep the newest message for the acknowledgement; the rest go.
    if (list.Count > 0) {
      if (batch.held->last) natsMsg_Destroy(batch.held->last);
      batch.held->last = list.Msgs[list.Count - 1];
      list.Msgs[list.Count - 1] = nullptr;
    }
    natsMsgList_Destroy(&list);
  }
  if (failed.ok() && !buffer.empty()) {
    hash.Update(buffer);
    batch.bytes += buffer.size();
    flush();
  }
  if (failed.ok() && ::fsync(fd) != 0) failed = Status::IOError("syncing " + req.path);
  ::close(fd);
  if (!failed.ok()) {
    ::unlink(req.path.c_str());
    return failed;
  }
  batch.more = batch.messages >= req.max_messages && pending > 0;
  batch.sha256 = hash.HexDigest();
  return batch;
}

namespace {

// The `messages` format: the envelope's fields, then the payload's own
// (each top-level key of the JSON objects a column).
class MessagesDecoder final : public Decoder {
 public:
  Result<std::string> TableSql(const DecodeRequest& req) const override {
    uint64_t max_object = 16 << 20;
    std::error_code ec;
    uint64_t size = std::filesystem::file_size(req.path, ec);
    if (!ec && size == 0) {
      // No messages: the envelope's columns, no rows (later batches add theirs).
      return std::string(
          "(SELECT CAST(NULL AS UBIGINT) AS _stream_seq, CAST(NULL AS VARCHAR) AS _subject, "
          "CAST(NULL AS TIMESTAMP) AS _published_at WHERE false)");
    }
    if (!ec) max_object = std::max<uint64_t>(max_object, std::min<uint64_t>(size + 1, 1u << 30));
    std::string sql = "(SELECT * EXCLUDE (_data), unnest(_data) FROM read_json(" +
                      QuoteLiteral(req.path) +
                      ", format='newline_delimited', sample_size=-1, maximum_object_size=" +
                      std::to_string(max_object) + "))";
    if (req.all_text) return "(SELECT COLUMNS(*)::VARCHAR FROM " + sql + ")";
    return sql;
  }
  std::string Extension() const override { return "ndjson"; }
};

}  // namespace

std::unique_ptr<Decoder> NewMessagesDecoder() { return std::make_unique<MessagesDecoder>(); }

}  // namespace sluice
