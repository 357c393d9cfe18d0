// The tunelens/* requests as the server speaks them (docs/protocol.md of the repository).
// Plain data: this file is shared by the extension and its unit tests, which run without VS Code.

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

export interface Match {
  uri: string;
  range: Range;
  title: string | null;
  tune?: number;
  bars?: [number, number];
  collection?: string | null;
  corpus?: string;
  score: number;
  vectorScore?: number;
  symbolicScore?: number;
  explanation?: string | null;
}

export interface SimilarParams {
  textDocument: { uri: string };
  position: Position;
  range?: Range;
  level?: "passage" | "tune";
  k?: number;
}

export interface SimilarResult {
  query?: { uri: string; range: Range; bars?: [number, number] };
  matches: Match[];
}

/** tunelens/compare takes SimilarParams (and the same filters) and answers one HTML page. */
export interface CompareResult {
  query: { uri: string; range: Range; bars?: [number, number] };
  /** A self-contained page (abcjs inlined) that engraves the query and each match. */
  html: string;
  /** How many passages the page shows, the query included. */
  passages: number;
}

export interface SearchParams {
  text: string;
  level?: "tune" | "passage";
  k?: number;
}

export interface SearchResult {
  matches: Match[];
}

export interface Label {
  label: string;
  score: number;
}

export interface ClassifiedTune {
  range: Range;
  title: string | null;
  labels: Label[];
}

export interface ClassifyParams {
  textDocument: { uri: string };
  labels?: string[];
  labelSet?: "genre" | "rhythm";
}

export interface ClassifyResult {
  tunes: ClassifiedTune[];
}

export interface CorpusStatus {
  name: string;
  files: number;
  tunes: number;
  passages: number;
}

export interface StatusResult {
  serverVersion: string;
  protocolVersion: number;
  model: { id: string; name: string; dim: number } | null;
  device: string;
  corpora: CorpusStatus[];
  queue?: { pending: number; running: number };
  indexing: boolean;
  filesDone?: number;
  filesTotal?: number;
  /** Bytes; Linux with glibc only. */
  memory?: { resident: number; residentPeak: number; heapLive: number; heapFree: number };
}

export const Methods = {
  similar: "tunelens/similar",
  compare: "tunelens/compare",
  search: "tunelens/search",
  classify: "tunelens/classify",
  status: "tunelens/status",
  reindex: "tunelens/reindex",
} as const;
