// The few Linux system calls @minato/layers needs that Node's fs module lacks: mknod(2) for device
// nodes and overlay whiteouts, the l*xattr(2) family for extended attributes (which never follow
// symlinks), and mount(2)/umount2(2) for the overlays that stack layers into a root filesystem.
// mknod and the xattr calls are synchronous and take microseconds; mount and umount2 run on the
// thread pool and return promises (unmounting an overlay syncs its upper file system, which can take
// long after a build wrote many files). Errors are Node-style (`code`, `errno`, `syscall`, `path`)
// so callers handle them like fs errors.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>

#define NAPI_VERSION 8
#include <node_api.h>

#define PATH_BUF 4097
#define NAME_BUF 256

static const char *errno_code(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EIO: return "EIO";
    case EACCES: return "EACCES";
    case EEXIST: return "EEXIST";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ELOOP: return "ELOOP";
    case ENODATA: return "ENODATA";
    case ENOTSUP: return "ENOTSUP";
    case ERANGE: return "ERANGE";
    case E2BIG: return "E2BIG";
    case EDQUOT: return "EDQUOT";
    case EBUSY: return "EBUSY";
    case ENODEV: return "ENODEV";
    default: return "EUNKNOWN";
  }
}

static napi_value errno_error(napi_env env, int err, const char *syscall, const char *path) {
  char message[PATH_BUF + 128];
  snprintf(message, sizeof message, "%s: %s, %s '%s'", errno_code(err), strerror(err), syscall, path);
  napi_value msg, error, value;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &error);
  napi_create_string_utf8(env, errno_code(err), NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "code", value);
  napi_create_int32(env, -err, &value);
  napi_set_named_property(env, error, "errno", value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "syscall", value);
  napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "path", value);
  return error;
}

static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *path) {
  napi_throw(env, errno_error(env, err, syscall, path));
  return NULL;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, "wrong number of arguments");
    return 0;
  }
  return 1;
}

static int get_string(napi_env env, napi_value value, char *buf, size_t size, const char *what) {
  size_t length = 0;
  if (napi_get_value_string_utf8(env, value, buf, size, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, what);
    return 0;
  }
  if (length >= size - 1) {
    napi_throw_range_error(env, "ENAMETOOLONG", what);
    return 0;
  }
  return 1;
}

static int get_u32(napi_env env, napi_value value, uint32_t *out, const char *what) {
  if (napi_get_value_uint32(env, value, out) != napi_ok) {
    napi_throw_type_error(env, NULL, what);
    return 0;
  }
  return 1;
}

// mknod(path, mode, major, minor): mode includes the file type bits (S_IFCHR, S_IFBLK, S_IFIFO).
static napi_value js_mknod(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  char path[PATH_BUF];
  uint32_t mode, major_n, minor_n;
  if (!get_args(env, info, 4, argv)) return NULL;
  if (!get_string(env, argv[0], path, sizeof path, "path must be a string")) return NULL;
  if (!get_u32(env, argv[1], &mode, "mode must be a number")) return NULL;
  if (!get_u32(env, argv[2], &major_n, "major must be a number")) return NULL;
  if (!get_u32(env, argv[3], &minor_n, "minor must be a number")) return NULL;
  if (mknod(path, (mode_t)mode, makedev(major_n, minor_n)) != 0) return throw_errno(env, errno, "mknod", path);
  return NULL;
}

// lsetxattr(path, name, value: Buffer)
static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char path[PATH_BUF], name[NAME_BUF];
  void *data = NULL;
  size_t length = 0;
  if (!get_args(env, info, 3, argv)) return NULL;
  if (!get_string(env, argv[0], path, sizeof path, "path must be a string")) return NULL;
  if (!get_string(env, argv[1], name, sizeof name, "name must be a string")) return NULL;
  if (napi_get_buffer_info(env, argv[2], &data, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "value must be a Buffer");
    return NULL;
  }
  if (lsetxattr(path, name, length ? data : "", length, 0) != 0) return throw_errno(env, errno, "lsetxattr", path);
  return NULL;
}

// lremovexattr(path, name): absent attributes are not an error.
static napi_value js_lremovexattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char path[PATH_BUF], name[NAME_BUF];
  if (!get_args(env, info, 2, argv)) return NULL;
  if (!get_string(env, argv[0], path, sizeof path, "path must be a string")) return NULL;
  if (!get_string(env, argv[1], name, sizeof name, "name must be a string")) return NULL;
  if (lremovexattr(path, name) != 0 && errno != ENODATA) return throw_errno(env, errno, "lremovexattr", path);
  return NULL;
}

// lgetxattr(path, name) -> Buffer, or null when the attribute is absent.
static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  char path[PATH_BUF], name[NAME_BUF];
  if (!get_args(env, info, 2, argv)) return NULL;
  if (!get_string(env, argv[0], path, sizeof path, "path must be a string")) return NULL;
  if (!get_string(env, argv[1], name, sizeof name, "name must be a string")) return NULL;
  for (;;) {
    ssize_t size = lgetxattr(path, name, NULL, 0);
    if (size < 0) {
      if (errno == ENODATA) {
        napi_get_null(env, &result);
        return result;
      }
      return throw_errno(env, errno, "lgetxattr", path);
    }
    void *data = NULL;
    if (napi_create_buffer(env, (size_t)size, &data, &result) != napi_ok) return NULL;
    if (size == 0) return result;
    ssize_t got = lgetxattr(path, name, data, (size_t)size);
    if (got >= 0) {
      if (got == size) return result;
      napi_value sliced;
      void *copy = NULL;
      napi_create_buffer_copy(env, (size_t)got, data, &copy, &sliced);
      return sliced;
    }
    if (errno != ERANGE) return throw_errno(env, errno, "lgetxattr", path);
    // The value grew between the two calls: ask again.
  }
}

// llistxattr(path) -> string[]
static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  char path[PATH_BUF];
  if (!get_args(env, info, 1, argv)) return NULL;
  if (!get_string(env, argv[0], path, sizeof path, "path must be a string")) return NULL;
  for (;;) {
    ssize_t size = llistxattr(path, NULL, 0);
    if (size < 0) return throw_errno(env, errno, "llistxattr", path);
    napi_create_array(env, &result);
    if (size == 0) return result;
    char *names = malloc((size_t)size);
    if (names == NULL) return throw_errno(env, ENOMEM, "llistxattr", path);
    ssize_t got = llistxattr(path, names, (size_t)size);
    if (got < 0) {
      int err = errno;
      free(names);
      if (err == ERANGE) continue;
      return throw_errno(env, err, "llistxattr", path);
    }
    uint32_t index = 0;
    for (ssize_t offset = 0; offset < got;) {
      size_t length = strnlen(names + offset, (size_t)(got - offset));
      napi_value name;
      napi_create_string_utf8(env, names + offset, length, &name);
      napi_set_element(env, result, index++, name);
      offset += (ssize_t)length + 1;
    }
    free(names);
    return result;
  }
}

// A mount(2) or umount2(2) call on the thread pool, settling `deferred` when done.
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int is_mount;
  char source[PATH_BUF];
  char target[PATH_BUF];
  char fstype[NAME_BUF];
  char *data;
  uint32_t flags;
  int err;
} mount_job;

static void mount_execute(napi_env env, void *p) {
  mount_job *job = p;
  int rc = job->is_mount ? mount(job->source, job->target, job->fstype, job->flags, job->data)
                         : umount2(job->target, (int)job->flags);
  job->err = rc == 0 ? 0 : errno;
}

static void mount_complete(napi_env env, napi_status status, void *p) {
  mount_job *job = p;
  if (job->err != 0) {
    napi_reject_deferred(env, job->deferred, errno_error(env, job->err, job->is_mount ? "mount" : "umount2", job->target));
  } else {
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, job->deferred, undefined);
  }
  napi_delete_async_work(env, job->work);
  free(job->data);
  free(job);
}

static napi_value queue_mount_job(napi_env env, mount_job *job) {
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, job->is_mount ? "mount" : "umount2", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, mount_execute, mount_complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}

// mount(source, target, fstype, flags, data) -> Promise<void>
static napi_value js_mount(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  size_t data_length = 0;
  if (!get_args(env, info, 5, argv)) return NULL;
  mount_job *job = calloc(1, sizeof *job);
  if (!job) return throw_errno(env, ENOMEM, "mount", "");
  job->is_mount = 1;
  if (!get_string(env, argv[0], job->source, sizeof job->source, "source must be a string") ||
      !get_string(env, argv[1], job->target, sizeof job->target, "target must be a string") ||
      !get_string(env, argv[2], job->fstype, sizeof job->fstype, "fstype must be a string") ||
      !get_u32(env, argv[3], &job->flags, "flags must be a number") ||
      napi_get_value_string_utf8(env, argv[4], NULL, 0, &data_length) != napi_ok) {
    free(job);
    return NULL;
  }
  job->data = malloc(data_length + 1);
  if (!job->data) {
    free(job);
    return throw_errno(env, ENOMEM, "mount", "");
  }
  napi_get_value_string_utf8(env, argv[4], job->data, data_length + 1, &data_length);
  return queue_mount_job(env, job);
}

// umount(target, flags) -> Promise<void>; flags as umount2(2) takes them (MNT_DETACH = 2).
static napi_value js_umount(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  mount_job *job = calloc(1, sizeof *job);
  if (!job) return throw_errno(env, ENOMEM, "umount2", "");
  if (!get_string(env, argv[0], job->target, sizeof job->target, "target must be a string") ||
      !get_u32(env, argv[1], &job->flags, "flags must be a number")) {
    free(job);
    return NULL;
  }
  return queue_mount_job(env, job);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"mknod", NULL, js_mknod, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lsetxattr", NULL, js_lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lremovexattr", NULL, js_lremovexattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lgetxattr", NULL, js_lgetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"llistxattr", NULL, js_llistxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mount", NULL, js_mount, NULL, NULL, NULL, napi_enumerable, NULL},
      {"umount", NULL, js_umount, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
