/** What the application layer of `verify` reports (the `app` field of `verify --json`). */
export interface AppReport {
  /** Recognised application, e.g. "vaultwarden". */
  name: string;
  /** Releases whose migration set equals the applied set (null when no release matches). */
  releases: { min: string; max: string } | null;
  migrations: {
    applied: number;
    /** Highest applied migration version, e.g. "20260505120000". */
    highest: string | null;
    /** Applied versions no known release has (a newer release, or another app). */
    unknown: string[];
    /** Versions the matched (or nearest) release has but the database lacks. */
    missing: string[];
  };
  /** Row counts of the main tables. Never any content. */
  rowCounts: Record<string, number>;
  /** Newest activity timestamp found (RFC 3339), e.g. the latest revision date. */
  lastActivity: string | null;
}
