import { randomBytes, randomInt } from "node:crypto";

// Random container names in Docker's style, `adjective_surname`. The words are our own selection:
// adjectives of temperament and surnames of scientists and engineers.
const ADJECTIVES = [
  "admiring",
  "agitated",
  "amazing",
  "awesome",
  "blissful",
  "bold",
  "brave",
  "calm",
  "charming",
  "clever",
  "cool",
  "dazzling",
  "determined",
  "eager",
  "ecstatic",
  "elastic",
  "elated",
  "eloquent",
  "epic",
  "fervent",
  "focused",
  "friendly",
  "gallant",
  "gentle",
  "gracious",
  "happy",
  "hopeful",
  "jolly",
  "keen",
  "kind",
  "laughing",
  "loving",
  "lucid",
  "modest",
  "musing",
  "nifty",
  "nostalgic",
  "optimistic",
  "peaceful",
  "pensive",
  "quirky",
  "relaxed",
  "serene",
  "sharp",
  "stoic",
  "sweet",
  "tender",
  "trusting",
  "vibrant",
  "wizardly",
  "youthful",
  "zealous",
];

const SURNAMES = [
  "agnesi",
  "babbage",
  "bohr",
  "boole",
  "cannon",
  "curie",
  "darwin",
  "dijkstra",
  "einstein",
  "euler",
  "faraday",
  "fermi",
  "feynman",
  "franklin",
  "galileo",
  "gauss",
  "goodall",
  "hamilton",
  "hawking",
  "hodgkin",
  "hopper",
  "hypatia",
  "jemison",
  "kepler",
  "knuth",
  "kowalevski",
  "lamarr",
  "leavitt",
  "lovelace",
  "maxwell",
  "meitner",
  "mendel",
  "minsky",
  "newton",
  "noether",
  "pascal",
  "pasteur",
  "ramanujan",
  "ritchie",
  "sagan",
  "shannon",
  "somerville",
  "tesla",
  "thompson",
  "turing",
  "volta",
  "wilson",
  "wozniak",
  "yalow",
  "yonath",
];

/** A random `adjective_surname`; with `retry` > 0 a digit is appended, as Docker does after a clash. */
export function randomName(retry = 0): string {
  const name = `${ADJECTIVES[randomInt(ADJECTIVES.length)]}_${SURNAMES[randomInt(SURNAMES.length)]}`;
  return retry > 0 ? `${name}${randomInt(10)}` : name;
}

/** A container ID: 32 random bytes as 64 hex digits (never all digits, so it cannot be taken for a number). */
export function newContainerId(): string {
  for (;;) {
    const id = randomBytes(32).toString("hex");
    if (!/^\d+$/.test(id.slice(0, 12))) return id;
  }
}

/**
 * Docker's rule for `--name` (validContainerNamePattern): `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, an optional
 * leading `/`; and at most 253 characters, as peers resolve it as a host name (/etc/hosts).
 */
export function validName(name: string): boolean {
  return /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(name) && name.replace(/^\//, "").length <= 253;
}
