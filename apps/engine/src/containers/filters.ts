// `GET /containers/json?filters=`: the filters dockerd applies to its list (id, name, label, status,
// exited, ancestor by image ID or name).

export interface FilterableContainer {
  id: string;
  name: string;
  status: string;
  exitCode: number;
  imageId: string;
  imageName: string;
  labels: Record<string, string>;
}

export const CONTAINER_FILTERS = ["id", "name", "label", "status", "exited", "ancestor"];
const STATUSES = ["created", "restarting", "running", "removing", "paused", "exited", "dead"];

export class FilterError extends Error {}

function matchesLabel(labels: Record<string, string>, filter: string): boolean {
  const eq = filter.indexOf("=");
  return eq === -1 ? filter in labels : labels[filter.slice(0, eq)] === filter.slice(eq + 1);
}

/** True when the container passes every filter: values of one filter are alternatives (OR), filters combine with AND. */
export function matchesContainerFilters(container: FilterableContainer, filters: Record<string, string[]>): boolean {
  for (const [name, values] of Object.entries(filters)) {
    if (values.length === 0) continue;
    let ok: boolean;
    switch (name) {
      case "id":
        ok = values.some((v) => container.id.startsWith(v));
        break;
      case "name":
        // dockerd matches names as regular expressions against "/name".
        ok = values.some((v) => {
          try {
            return new RegExp(v).test(`/${container.name}`);
          } catch {
            throw new FilterError(`invalid filter 'name=${v}'`);
          }
        });
        break;
      case "label":
        ok = values.every((v) => matchesLabel(container.labels, v));
        break;
      case "status":
        for (const v of values) if (!STATUSES.includes(v)) throw new FilterError(`invalid filter 'status=${v}'`);
        ok = values.includes(container.status);
        break;
      case "exited":
        ok = container.status === "exited" && values.some((v) => Number(v) === container.exitCode);
        break;
      case "ancestor":
        ok = values.some((v) => container.imageId === v || container.imageId.slice(7).startsWith(v) || container.imageName === v);
        break;
      default:
        throw new FilterError(`invalid filter '${name}'`);
    }
    if (!ok) return false;
  }
  return true;
}
