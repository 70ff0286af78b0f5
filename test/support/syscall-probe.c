/* Tries one syscall a container's confinement should refuse and prints "ok" or the errno's name,
 * so a test reads from inside the container which layer (seccomp, capabilities) stopped it.
 * Built static by test/security.test.ts and bind-mounted into busybox containers. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int report(long result) {
  if (result >= 0) {
    puts("ok");
    return 0;
  }
  const char *name = errno == EPERM ? "EPERM" : errno == EACCES ? "EACCES" : errno == ENOSYS ? "ENOSYS" : errno == EINVAL ? "EINVAL" : strerror(errno);
  puts(name);
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  const char *what = argv[1];
  if (!strcmp(what, "keyctl")) /* KEYCTL_GET_KEYRING_ID of the session keyring (-3), creating it */
    return report(syscall(SYS_keyctl, 0, -3, 1));
  if (!strcmp(what, "unshare-user")) return report(unshare(CLONE_NEWUSER));
  if (!strcmp(what, "unshare-mount")) return report(unshare(CLONE_NEWNS));
  if (!strcmp(what, "mount")) return report(mount("tmpfs", "/tmp", "tmpfs", 0, NULL));
  if (!strcmp(what, "finit_module")) return report(syscall(SYS_finit_module, open("/dev/null", O_RDONLY), "", 0));
  if (!strcmp(what, "mkdir")) return report(mkdir("/tmp/probe-dir", 0755));
  return 2;
}
