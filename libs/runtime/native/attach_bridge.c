// conmon's attach socket is AF_UNIX SOCK_SEQPACKET, which node:net cannot open. connect() opens it
// and bridges it to one end of a SOCK_STREAM socketpair that Node wraps with `new net.Socket({ fd })`;
// a detached thread per bridge moves the bytes:
//   Node → conmon: every read of up to 8192 bytes (conmon's read buffer) becomes one message, which
//     conmon writes to the process's stdin or TTY master. Node ending its side (shutdown SHUT_WR) is
//     passed on as shutdown(SHUT_WR): conmon reads EOF and closes the process's stdin, unless it was
//     started with --leave-stdin-open.
//   conmon → Node: each message is [pipe byte: 2 stdout, 3 stderr][data]; it is forwarded as a frame
//     [pipe byte][u32 big-endian length][data], so Node keeps the stream apart without polling a log
//     (a TTY's echo reaches the client as soon as conmon reads it). conmon closing the socket (the
//     process ended) becomes EOF on the Node side.
// The thread ends, closing both of its descriptors, when both sides have ended or Node has closed its
// end entirely (poll reports POLLHUP), so a client that leaves a silent container frees it at once.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define NAPI_VERSION 8
#include <node_api.h>

#define STDIN_CHUNK 8192
#define MESSAGE_MAX 65536
#define FRAME_HEADER 5

struct bridge {
  int seq;
  int stream;
};

static int write_all(int fd, const char *data, size_t length) {
  while (length > 0) {
    ssize_t n = send(fd, data, length, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    data += n;
    length -= (size_t)n;
  }
  return 0;
}

static void *run_bridge(void *arg) {
  struct bridge b = *(struct bridge *)arg;
  free(arg);
  // frame[0..4] is the header; conmon's message lands at frame + 4 so its pipe byte is frame[4].
  char *frame = malloc(MESSAGE_MAX + FRAME_HEADER);
  char *input = malloc(STDIN_CHUNK);
  int from_node = 1, from_conmon = 1;
  while (frame && input && from_node) {
    struct pollfd fds[2] = {
      {.fd = b.stream, .events = POLLIN},
      {.fd = b.seq, .events = from_conmon ? POLLIN : 0},
    };
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (from_conmon && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = recv(b.seq, frame + 4, MESSAGE_MAX, 0);
      if (n > 0) {
        uint32_t length = (uint32_t)(n - 1);
        frame[0] = frame[4];
        frame[1] = (char)(length >> 24);
        frame[2] = (char)(length >> 16);
        frame[3] = (char)(length >> 8);
        frame[4] = (char)length;
        if (write_all(b.stream, frame, FRAME_HEADER + length) < 0) break;  // Node is gone
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        from_conmon = 0;
        shutdown(b.stream, SHUT_WR);
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(b.stream, input, STDIN_CHUNK);
      if (n > 0) {
        // Once conmon is gone there is nobody to take stdin: drop it until Node closes.
        if (from_conmon && send(b.seq, input, (size_t)n, MSG_NOSIGNAL) < 0 && errno != EINTR) {
          from_conmon = 0;
          shutdown(b.stream, SHUT_WR);
        }
      } else if (n == 0) {
        from_node = 0;
        if (from_conmon) shutdown(b.seq, SHUT_WR);
      } else if (errno != EINTR && errno != EAGAIN) {
        break;  // reset by Node
      }
    }
  }
  // Node closed its writing side: keep forwarding output until conmon ends or Node goes away.
  while (frame && from_conmon && !from_node) {
    // POLLHUP on the Node end (reported whatever the events asked): Node closed it entirely.
    struct pollfd fds[2] = {{.fd = b.seq, .events = POLLIN}, {.fd = b.stream, .events = 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents & (POLLHUP | POLLERR)) break;
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    ssize_t n = recv(b.seq, frame + 4, MESSAGE_MAX, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    uint32_t length = (uint32_t)(n - 1);
    frame[0] = frame[4];
    frame[1] = (char)(length >> 24);
    frame[2] = (char)(length >> 16);
    frame[3] = (char)(length >> 8);
    frame[4] = (char)length;
    if (write_all(b.stream, frame, FRAME_HEADER + length) < 0) break;
  }
  free(frame);
  free(input);
  close(b.seq);
  close(b.stream);
  return NULL;
}

static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *path) {
  char message[PATH_MAX + 128];
  snprintf(message, sizeof message, "%s %s: %s", syscall, path, strerror(err));
  napi_value msg, error, value;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &error);
  napi_create_int32(env, -err, &value);
  napi_set_named_property(env, error, "errno", value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "syscall", value);
  napi_create_string_utf8(env, err == ENOENT ? "ENOENT" : err == ECONNREFUSED ? "ECONNREFUSED" : "EIO", NAPI_AUTO_LENGTH,
                          &value);
  napi_set_named_property(env, error, "code", value);
  napi_throw(env, error);
  return NULL;
}

// connect(path: string): number — the Node end of the bridge (a SOCK_STREAM socket descriptor).
static napi_value bridge_connect(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  char path[PATH_MAX];
  size_t length = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_string_utf8(env, argv[0], path, sizeof path, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "connect(path: string)");
    return NULL;
  }
  if (length >= sizeof path - 1) return throw_errno(env, ENAMETOOLONG, "connect", "(path)");
  int seq = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (seq < 0) return throw_errno(env, errno, "socket", path);
  // sun_path holds 107 bytes; a longer path is reached through its directory's /proc/self/fd link
  // (conmon binds its socket the same way).
  int dirfd = -1;
  if (length >= sizeof addr.sun_path) {
    char *slash = strrchr(path, '/');
    if (!slash) {
      close(seq);
      return throw_errno(env, ENAMETOOLONG, "connect", path);
    }
    *slash = '\0';
    dirfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    *slash = '/';
    if (dirfd < 0) {
      int err = errno;
      close(seq);
      return throw_errno(env, err, "open", path);
    }
    int n = snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", dirfd, slash + 1);
    if (n < 0 || (size_t)n >= sizeof addr.sun_path) {
      close(dirfd);
      close(seq);
      return throw_errno(env, ENAMETOOLONG, "connect", path);
    }
  } else {
    memcpy(addr.sun_path, path, length + 1);
  }
  int connected = connect(seq, (struct sockaddr *)&addr, sizeof addr);
  int connect_errno = errno;
  if (dirfd >= 0) close(dirfd);
  if (connected < 0) {
    close(seq);
    return throw_errno(env, connect_errno, "connect", path);
  }
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
    int err = errno;
    close(seq);
    return throw_errno(env, err, "socketpair", path);
  }
  struct bridge *b = malloc(sizeof *b);
  pthread_attr_t attr;
  pthread_t thread;
  int err = b ? pthread_attr_init(&attr) : ENOMEM;
  if (err == 0) {
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    b->seq = seq;
    b->stream = pair[1];
    err = pthread_create(&thread, &attr, run_bridge, b);
    pthread_attr_destroy(&attr);
  }
  if (err != 0) {
    free(b);
    close(seq);
    close(pair[0]);
    close(pair[1]);
    return throw_errno(env, err, "pthread_create", path);
  }
  napi_value result;
  napi_create_int32(env, pair[0], &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "connect", NAPI_AUTO_LENGTH, bridge_connect, NULL, &fn);
  napi_set_named_property(env, exports, "connect", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
