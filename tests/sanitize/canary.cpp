// A deliberate bug of each kind, so that the sanitizer setups prove they
// catch one (Note [Sanitizer builds] in meson.build): a run that reports
// nothing would otherwise look the same as a run that checks nothing.
//   canary heap-overflow | signed-overflow | data-race
#include <cstdio>
#include <cstring>
#include <thread>

namespace {

int heap_overflow() {
  volatile int size = 8;
  char* bytes = new char[size];
  bytes[size] = 1;  // one past the end
  delete[] bytes;
  return 0;
}

int signed_overflow(int start) {
  volatile int value = start;
  value = value + 1;  // start is INT_MAX
  return value == 0 ? 1 : 0;
}

int data_race() {
  int shared = 0;
  std::thread writer([&] { shared = 1; });
  shared = 2;  // unordered with the writer's store
  writer.join();
  return shared == 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "heap-overflow") == 0) return heap_overflow();
  if (argc == 2 && std::strcmp(argv[1], "signed-overflow") == 0) return signed_overflow(__INT_MAX__);
  if (argc == 2 && std::strcmp(argv[1], "data-race") == 0) return data_race();
  std::fprintf(stderr, "usage: canary heap-overflow|signed-overflow|data-race\n");
  return 2;
}
