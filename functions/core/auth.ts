/**
 * Verifies the Cognito ID token again inside the function (API Gateway's authorizer checked it first)
 * and turns its claims into a typed caller. Secure by default: signature, issuer, audience (the app
 * client), `token_use: id` and `exp` are all required; claims that break the tenant slug rule or name an
 * unknown role are refused. A verified token's caller is cached until its `exp` (verified-token-cache.ts).
 */
import { CognitoJwtVerifier } from 'aws-jwt-verify';
import { FetchError, JwksNotAvailableInCacheError, JwtBaseError, NonRetryableFetchError } from 'aws-jwt-verify/error';
import type { Fetcher } from 'aws-jwt-verify/https';
import { SimpleJwksCache, type Jwks } from 'aws-jwt-verify/jwk';
import { config, required } from './config';
import { tracedFetch } from './observability';
import { dataUrlBytes, isDataUrl } from './data-url';
import { ServiceUnavailableError, UnauthorizedError } from './errors';
import { createVerifiedTokenCache } from './verified-token-cache';
import { isRole, isTenantId, isUuid, type Role, type TenantRole } from './tenant';

/** The authenticated caller. Platform operators (`superadmin`) carry no tenant. */
export type Caller =
  | { readonly userId: string; readonly role: TenantRole; readonly tenantId: string }
  | { readonly userId: string; readonly role: 'superadmin'; readonly tenantId?: undefined };

export interface Authenticator {
  /** Verifies `Authorization: Bearer <ID token>`; throws UnauthorizedError or ServiceUnavailableError. */
  authenticate(authorization: string | undefined): Promise<Caller>;
}

export interface AuthenticatorOptions {
  readonly userPoolId: string;
  readonly clientId: string;
  /**
   * Where the JWKS really lives when it is not Cognito's public endpoint (the local emulator). The
   * verifier still checks the Cognito issuer; only the key download is redirected.
   */
  readonly jwksUrl?: string;
}

/** What verifies an ID token's signature and claims: aws-jwt-verify's CognitoJwtVerifier in production. */
export interface IdTokenVerifier {
  verify(token: string): Promise<Record<string, unknown>>;
}

/** Collaborators of the authenticator, injectable for tests and benchmarks. */
export interface AuthenticatorDeps {
  /** @default a CognitoJwtVerifier for the options' pool and client */
  readonly verifier?: IdTokenVerifier;
  /** Verified tokens kept until their `exp`; 0 turns the cache off. @default 1000 */
  readonly maxCachedTokens?: number;
  /** The clock of the cache, in epoch milliseconds. @default Date.now */
  readonly now?: () => number;
}

/** The bytes as an ArrayBuffer of their own, as `Response.arrayBuffer()` gives them. */
const arrayBufferOf = (bytes: Buffer): ArrayBuffer => new Uint8Array(bytes).buffer;

const BEARER = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/;

/**
 * The JWKS fetcher: downloads from `jwksUrl` when set instead of the issuer's URL (the emulator's http URL
 * through fetch; the `data:` URL a deployment snapshots the JWKS into is decoded by data-url.ts, so a token
 * with an unknown `kid` re-reads the same keys and is refused with 401, not a failed download, 503), else from
 * the issuer's URL as aws-jwt-verify's own fetcher does (one immediate retry after a network error).
 * Through `tracedFetch`, so that a download is a `remote` subsegment of the request's trace.
 */
function jwksFetcher(jwksUrl: string | undefined): Fetcher {
  const once = async (url: string): Promise<ArrayBuffer> => {
    if (isDataUrl(url)) return arrayBufferOf(dataUrlBytes(url));
    const response = await tracedFetch(url, { signal: AbortSignal.timeout(3000) });
    if (!response.ok) throw new NonRetryableFetchError(url, `JWKS answered ${response.status}`);
    return response.arrayBuffer();
  };
  return {
    fetch: async (uri: string) => {
      const url = jwksUrl ?? uri;
      try {
        return await once(url);
      } catch (error) {
        if (error instanceof NonRetryableFetchError) throw error;
        return once(url).catch((again: unknown) => {
          throw again instanceof FetchError ? again : new FetchError(url, again instanceof Error ? again.message : String(again));
        });
      }
    },
  };
}

export function claimsToCaller(payload: Record<string, unknown>): Caller {
  const userId = payload.sub;
  const role: unknown = payload['custom:role'];
  const tenantId: unknown = payload['custom:tenant_id'];
  if (!isUuid(userId)) throw new UnauthorizedError('The token has no valid subject.');
  if (!isRole(role)) throw new UnauthorizedError('The token carries no known role.');
  if (role === 'superadmin') return { userId, role };
  if (!isTenantId(tenantId)) throw new UnauthorizedError('The token carries no valid tenant.');
  return { userId, role: role as Exclude<Role, 'superadmin'>, tenantId };
}

export function createAuthenticator(options: AuthenticatorOptions, deps: AuthenticatorDeps = {}): Authenticator {
  const fetcher = jwksFetcher(options.jwksUrl);
  const cognito = CognitoJwtVerifier.create(
    {
      userPoolId: options.userPoolId,
      tokenUse: 'id',
      clientId: options.clientId,
      // aws-jwt-verify accepts a token without `exp`; we do not.
      customJwtCheck: ({ payload }) => {
        if (typeof payload.exp !== 'number') throw new UnauthorizedError('The token has no expiry.');
      },
    },
    { jwksCache: new SimpleJwksCache({ fetcher }) },
  );
  const verifier: IdTokenVerifier = deps.verifier ?? { verify: async (token) => (await cognito.verify(token)) as Record<string, unknown> };
  const verified = createVerifiedTokenCache<Caller>({ maxEntries: deps.maxCachedTokens, now: deps.now });
  let jwksLoaded: Promise<void> | undefined;

  /** Reads the keys at `jwksUrl` once, through the cache's own fetcher, before the first verification. */
  async function loadLocalJwks(url: string): Promise<void> {
    cognito.cacheJwks(JSON.parse(Buffer.from(await fetcher.fetch(url)).toString('utf8')) as Jwks);
  }

  return {
    async authenticate(authorization) {
      const match = authorization === undefined ? null : BEARER.exec(authorization.trim());
      if (!match) throw new UnauthorizedError('A bearer ID token is required.');
      const token = match[1]!;
      const cached = verified.get(token);
      if (cached) return cached;
      if (options.jwksUrl && !deps.verifier) {
        jwksLoaded ??= loadLocalJwks(options.jwksUrl).catch((error: unknown) => {
          jwksLoaded = undefined; // a failed load is retried by the next request, never cached
          throw error;
        });
        try {
          await jwksLoaded;
        } catch (error) {
          throw new ServiceUnavailableError('The token keys cannot be loaded; try again shortly.', { cause: error });
        }
      }
      let payload: Record<string, unknown>;
      try {
        payload = await verifier.verify(token);
      } catch (error) {
        if (error instanceof UnauthorizedError) throw error;
        if (error instanceof FetchError || error instanceof JwksNotAvailableInCacheError) {
          throw new ServiceUnavailableError('The token keys cannot be loaded; try again shortly.', { cause: error });
        }
        if (error instanceof JwtBaseError) throw new UnauthorizedError('The token is not valid.', { cause: error });
        throw new UnauthorizedError('The token is not valid.', { cause: error });
      }
      const caller = claimsToCaller(payload);
      // Only a token that passed every check is cached, and only until its own expiry.
      if (typeof payload.exp === 'number') verified.set(token, payload.exp, caller);
      return caller;
    },
  };
}

let containerAuthenticator: Authenticator | undefined;

/** The container's authenticator, created on first use from configuration. */
export function authenticator(): Authenticator {
  if (!containerAuthenticator) {
    const { auth } = config();
    containerAuthenticator = createAuthenticator({
      userPoolId: required(auth.userPoolId, 'USER_POOL_ID'),
      clientId: required(auth.clientId, 'USER_POOL_CLIENT_ID'),
      jwksUrl: auth.jwksUrl,
    });
  }
  return containerAuthenticator;
}
