// fixture_server: the test HTTP server as a process, for data-driven cases
// and the demo. Writes its port to --port-file once it listens; stops on
// SIGTERM or SIGINT.
//   fixture_server --root DIR [--port N] [--port-file F] [--token T]
//                  [--basic USER:PASSWORD] [--key API_KEY]
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "support/fixture_server.h"

int main(int argc, char** argv) {
  sluice::testing::FixtureServerOptions opt;
  std::string port_file;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--root") {
      opt.root = value;
    } else if (flag == "--port") {
      opt.port = std::stoi(value);
    } else if (flag == "--port-file") {
      port_file = value;
    } else if (flag == "--token") {
      opt.token = value;
    } else if (flag == "--basic") {
      opt.basic = value;
    } else if (flag == "--key") {
      opt.api_key = value;
    } else {
      std::fprintf(stderr, "fixture_server: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (opt.root.empty()) {
    std::fprintf(stderr, "usage: fixture_server --root DIR [--port N] [--port-file F]\n");
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // the server's threads inherit the mask
  sluice::testing::FixtureServer server(opt);
  if (!server.Start()) {
    std::fprintf(stderr, "fixture_server: cannot listen on 127.0.0.1:%d\n", opt.port);
    return 1;
  }
  if (!port_file.empty()) {
    std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << server.port() << "\n";
    std::rename(tmp.c_str(), port_file.c_str());
  }
  std::printf("fixture_server: serving %s on http://127.0.0.1:%d\n", opt.root.c_str(),
              server.port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  server.Stop();
  return 0;
}
