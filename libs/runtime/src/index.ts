export { AttachConnection, connectAttach, type OutputStream, resizeTerminal } from "./attach.js";
export { capabilities, capabilitiesOfMask, hostCapabilities, LINUX_CAPABILITIES, normalizeCapability } from "./capabilities.js";
export { type CommandInput, combineCommand } from "./command.js";
export {
  DEFAULT_CAPABILITIES,
  DEFAULT_MASKED_PATHS,
  DEFAULT_PATH,
  DEFAULT_READONLY_PATHS,
  DEFAULT_SHM_SIZE,
  defaultDeviceRules,
  defaultDevices,
  defaultMounts,
  OCI_VERSION,
} from "./defaults.js";
export {
  blockDevice,
  type DeviceMapping,
  deviceAt,
  deviceCgroupRule,
  type HostDevice,
  hostDevices,
  mappedDevices,
  privilegedDevices,
} from "./devices.js";
export { RuntimeError, type RuntimeErrorCode } from "./errors.js";
export {
  DEFAULT_NAMESERVERS_V4,
  DEFAULT_NAMESERVERS_V6,
  type EtcFiles,
  etcFileMounts,
  type HostsOptions,
  hostnameFile,
  hostsFile,
  type ResolvConfOptions,
  readHostResolvConf,
  resolvConfFile,
  type WriteEtcFilesOptions,
  writeEtcFiles,
} from "./etc-files.js";
export { type CgroupMode, cgroupControllers, cgroupMountPoint, detectCgroupMode, type HostLimit, hostLimits, parseLimits } from "./host.js";
export { type LogRecord, parseK8sLog } from "./logs.js";
export {
  type ContainerPaths,
  type ContainerState,
  type ContainerStatus,
  type CreateOptions,
  type ExecOptions,
  type ExecSession,
  Runtime,
  type RuntimeOptions,
  selectOciRuntime,
  startErrorExitCode,
} from "./runtime.js";
export {
  type DockerSeccompFilter,
  type DockerSeccompProfile,
  type DockerSeccompSyscall,
  parseSeccompProfile,
  type SeccompContext,
  seccompFromProfile,
} from "./seccomp.js";
export { DOCKER_DEFAULT_SECCOMP_PROFILE } from "./seccomp-default.js";
export {
  CPU_PERIOD,
  type CreatedSpec,
  type CreateSpecOptions,
  checkSysctls,
  createSpec,
  createSpecDetailed,
  DEFAULT_NOFILE,
  type ImageRunConfig,
  INIT_PATH,
  MIN_MEMORY,
  type MountOption,
  mergeEnv,
  mergeTmpfsOptions,
  type NetworkMode,
  parseBind,
  parseCpuList,
  rlimits,
  type Ulimit,
} from "./spec.js";
export type * from "./spec-types.js";
export { type GroupEntry, type PasswdEntry, parseGroup, parsePasswd, type ResolvedUser, resolveUser, resolveUserInRootfs } from "./user.js";
