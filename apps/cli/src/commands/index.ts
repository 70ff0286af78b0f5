import type { CommandGroup } from "../command.js";
import { builderGroup, buildGroup } from "./build.js";
import { containerGroup, objectGroup } from "./container.js";
import { eventsGroup } from "./events.js";
import { imageGroup } from "./image.js";
import { networkGroup } from "./network.js";
import { registryGroup } from "./registry.js";
import { searchCommand } from "./search.js";
import { systemGroups } from "./system.js";
import { volumeGroup } from "./volume.js";

/**
 * Every command group of the CLI, in the order `--help` lists them. A new subject (container,
 * network, volume, builder …) is one more module here.
 */
export const COMMAND_GROUPS: CommandGroup[] = [
  containerGroup,
  imageGroup,
  buildGroup,
  builderGroup,
  registryGroup,
  { commands: [searchCommand] },
  networkGroup,
  volumeGroup,
  ...systemGroups,
  eventsGroup,
  objectGroup,
];
