/** litewarden's version, apart from the version command so `--version` loads nothing else. */
export const VERSION = "0.1.0";
