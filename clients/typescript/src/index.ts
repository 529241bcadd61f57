export { createContactAuth } from "./client.js";
export type {
  AccessClaims,
  Api,
  AuthChangeEvent,
  Contact,
  ContactAuth,
  ContactAuthOptions,
  ContactPatch,
  RefreshMode,
  Session,
  SessionResource,
  TokenPair,
} from "./client.js";
export { ContactAuthError } from "./errors.js";
export type { ErrorCode } from "./errors.js";
export { localStorageAdapter, memoryStorage } from "./storage.js";
export type { StorageAdapter } from "./storage.js";
export { challengeOf, createVerifier } from "./pkce.js";
export type { components, paths } from "./schema.js";
