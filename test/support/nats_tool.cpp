// A JetStream peer for cases: makes a stream and publishes to it, as an
// application would, through the NATS C client.
//   nats_tool URL add-stream NAME SUBJECT [max_msgs]   a file stream (limits retention)
//   nats_tool URL pub SUBJECT                          each line of stdin a message
//   nats_tool URL pub-hex SUBJECT HEX                  one message of these bytes
#include <nats/nats.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

namespace {

int Fail(const char* what, natsStatus s, jsErrCode code = static_cast<jsErrCode>(0)) {
  std::fprintf(stderr, "nats_tool: %s: %s (%d)\n", what, natsStatus_GetText(s),
               static_cast<int>(code));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(
        stderr,
        "usage: nats_tool URL add-stream NAME SUBJECT | pub SUBJECT | pub-hex SUBJECT HEX\n");
    return 2;
  }
  natsConnection* nc = nullptr;
  natsStatus s = natsConnection_ConnectTo(&nc, argv[1]);
  if (s != NATS_OK) return Fail("connect", s);
  jsCtx* js = nullptr;
  s = natsConnection_JetStream(&js, nc, nullptr);
  if (s != NATS_OK) return Fail("jetstream", s);
  std::string cmd = argv[2];
  int rc = 0;
  jsErrCode code = static_cast<jsErrCode>(0);
  if (cmd == "add-stream" && argc >= 5) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = argv[3];
    const char* subjects[] = {argv[4]};
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    if (argc >= 6) cfg.MaxMsgs = std::atoll(argv[5]);
    s = js_AddStream(nullptr, js, &cfg, nullptr, &code);
    if (s != NATS_OK) rc = Fail("add-stream", s, code);
  } else if (cmd == "pub") {
    std::string line;
    while (rc == 0 && std::getline(std::cin, line)) {
      s = js_Publish(nullptr, js, argv[3], line.data(), static_cast<int>(line.size()), nullptr,
                     &code);
      if (s != NATS_OK) rc = Fail("pub", s, code);
    }
  } else if (cmd == "pub-hex" && argc >= 5) {
    std::string hex = argv[4], bytes;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
      bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    s = js_Publish(nullptr, js, argv[3], bytes.data(), static_cast<int>(bytes.size()), nullptr,
                   &code);
    if (s != NATS_OK) rc = Fail("pub-hex", s, code);
  } else {
    std::fprintf(stderr, "nats_tool: unknown command %s\n", cmd.c_str());
    rc = 2;
  }
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  nats_Close();
  return rc;
}
