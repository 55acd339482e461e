// Type declarations for the Connect Portal host-page SDK (static/portal.js), version 0.1.0.
// portal.js is a classic script that defines one global, `ConnectPortal`.

declare namespace ConnectPortal {
  type RenderMode = 'modal' | 'inline';
  type Layout = 'wide' | 'narrow';
  type AuthType = 'oauth2' | 'api_key' | 'basic';

  /**
   * Either {appKey, userId, hash} (the session starts at once), or none of the three
   * (Paragon style: no session until authenticate(projectId, userToken)).
   */
  interface Options {
    /** The host project's public app key. */
    appKey?: string;
    /** The host's opaque id of the end user. */
    userId?: string;
    /** HMAC-SHA256 of userId with the app secret, computed by the host backend. */
    hash?: string;
    /** The portal's prefix URL, e.g. "https://portal.example/portal". Default: derived from portal.js's own src. */
    baseUrl?: string;
    /**
     * When the browser blocks the connect popup, continue in this window (redirect mode): the page
     * comes back with `portal_attempt=<id>`, whose outcome the SDK asks the portal for. Default true.
     */
    redirectOnPopupBlocked?: boolean;
    /** The portal's language, e.g. "fr", "pt-BR", "ar" (one of PORTAL_LANGUAGES; anything else is ignored). Default: the browser's. */
    lang?: string;
    /** The session's theme, over the server's PORTAL_THEME; checked by the portal (400 invalid_theme). */
    theme?: Theme;
  }

  /** A theme (README "Theming"); every key optional. */
  interface Theme {
    mode?: 'light' | 'dark' | 'auto';
    /** #rgb, #rrggbb, rgb() or opaque rgba(). */
    accent?: string;
    /** px (0-32) or rem (0-2), e.g. "6px". */
    radius?: string;
    /** A font-family list of local fonts: letters, digits, spaces, hyphens, quotes, commas. */
    font?: string;
    density?: 'compact' | 'comfortable';
    /** An https URL of the host's logo. */
    logo?: string;
    /** The host's name, plain text (at most 60 characters). */
    name?: string;
  }

  /** A connected account. Times are ISO-8601 UTC strings ending in "Z". Never carries a credential. */
  interface Account {
    id: string;
    app: string;
    label: string;
    external_id: string;
    status: string;
    scopes: string[];
    created_at: string;
    modified_at: string;
    /** The host's own JSON object (PATCH /connected-accounts/{id}, app secret); `tags` is a list of strings. Never secret. */
    metadata: { tags?: string[]; [key: string]: unknown };
  }

  interface AppSummary {
    name: string;
    title: string;
    description: string;
    categories: string[];
    icon_url: string;
    auth_type: AuthType;
    connected: boolean;
  }

  /** The short app description carried by events. */
  type AppRef = Pick<AppSummary, 'name' | 'title' | 'icon_url'>;

  interface ReadyPayload {
    isReady: true;
  }

  interface AppConnectedPayload {
    app: AppRef;
    connectedAccountId: string;
    /** All of the user's accounts of this app, modified_at descending. */
    connected_accounts: Account[];
  }

  interface AppDisconnectedPayload {
    app: AppRef;
    connectedAccountId: string;
    /** The remaining accounts of this app, modified_at descending. */
    connected_accounts: Account[];
  }

  type ModalClosedPayload = Record<string, never>;

  type ErrorType =
    | 'invalid_argument'
    | 'popup_blocked'
    | 'window_closed'
    | 'access_denied'
    | 'session_expired'
    | 'network_error'
    | 'origin_not_allowed'
    | 'invalid_token'
    | 'http_error'
    | 'connect_failed'
    | 'closed'
    | 'cancelled'
    | 'not_authenticated'
    | 'invalid_user_token'
    | (string & {});

  interface ErrorPayload {
    type: ErrorType;
    message: string;
  }

  interface EventMap {
    ready: ReadyPayload;
    'app-connected': AppConnectedPayload;
    'app-disconnected': AppDisconnectedPayload;
    'modal-closed': ModalClosedPayload;
    error: ErrorPayload;
  }

  type EventName = keyof EventMap;
  type Listener<K extends EventName> = (payload: EventMap[K]) => void;

  /** Events are scoped to one ConnectPortal instance. */
  interface EventEmitter {
    on<K extends EventName>(name: K, listener: Listener<K>): void;
    /** Without a listener, removes every listener of that event. */
    unsub<K extends EventName>(name: K, listener?: Listener<K>): void;
  }

  /** Every method rejects with an Error carrying `type` (and `status` for HTTP errors). */
  interface PortalError extends Error {
    type: ErrorType;
    status?: number;
    /** The parsed response body of a failed HTTP request, when there was one. */
    body?: unknown;
  }

  /** request() rejects with this when the proxied API (or the portal) answers non-2xx. */
  interface HttpError extends PortalError {
    type: 'http_error';
    status: number;
    /** Parsed JSON when the response said JSON, else its text; null when empty. */
    body: unknown;
  }

  /** A JSON Schema (Draft 2020-12) describing a function's params object. */
  interface JSONSchema {
    type?: string | string[];
    title?: string;
    description?: string;
    properties?: { [name: string]: JSONSchema };
    required?: string[];
    enum?: unknown[];
    default?: unknown;
    [keyword: string]: unknown;
  }

  /** A function's params: an object matching its `parameters` schema. */
  type FunctionParams = Record<string, unknown>;

  /** What getFunction() resolves with. */
  interface FunctionSignature {
    name: string;
    /** The app's name (slug), e.g. "slack". */
    app: string;
    title: string;
    description: string;
    parameters: JSONSchema;
    /** True when the result carries `next_page` and params accept it back. */
    paginated: boolean;
  }

  /** The function ran: the upstream API's status and body. */
  interface FunctionExecuted<T = unknown> {
    /** HTTP status of the call the portal made to the app. */
    network_code: number;
    /** The app's response body (or the part the function selects). */
    output: T;
    /** Paginated functions only: the cursor to pass as params.next_page; "" when no more pages. */
    next_page?: string;
  }

  interface FieldError {
    /** Dotted path of the offending param ("" for the params object itself). */
    field: string;
    message: string;
  }

  /** The function did not run (invalid params, no connected account, unknown function). */
  interface FunctionNotExecuted {
    /** Summary of the error. */
    error: string;
    error_details: FieldError[];
    message?: string;
  }

  /** invokeFunction()'s result; tell the two apart with `'error' in result`. */
  type FunctionResult<T = unknown> = FunctionExecuted<T> | FunctionNotExecuted;

  /** One app's state in getUser(). */
  interface UserIntegration {
    /** At least one of the user's accounts of the app is active. */
    enabled: boolean;
    /** How many accounts of the app the user has connected (any status). */
    connectedAccounts: number;
    /** One of them needs the user to connect again (its refresh token was refused). */
    needsReauth: boolean;
  }

  /** What getUser() resolves with (Paragon's ParagonUser); check `authenticated` first. */
  type User =
    | {
        authenticated: true;
        /** The user id the session is for (the JWT's `sub`, or `userId`). */
        userId: string;
        /** One entry per app of the marketplace, keyed by app name. */
        integrations: { [app: string]: UserIntegration };
      }
    | { authenticated: false };

  /** What event() resolves with: the event was recorded (202), its runs queued. */
  interface EventReceipt {
    id: string;
    name: string;
    runs: Array<{ id: string; function: string; status: 'queued' }>;
  }

  type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

  /** A host-declared automation of one app that the user turns on and configures. */
  interface Flow {
    name: string;
    enabled: boolean;
    settings: { [name: string]: unknown };
    connectedAccountId?: string | null;
    [key: string]: unknown;
  }

  interface FlowUpdate {
    enabled: boolean;
    settings?: { [name: string]: unknown };
    connectedAccountId?: string | null;
  }

  interface RequestOptions {
    /** Default "GET". */
    method?: HttpMethod | Lowercase<HttpMethod>;
    /** Plain objects and arrays are sent as JSON; strings, FormData, Blobs… as they are. */
    body?: object | BodyInit | null;
    /** Forwarded upstream only if the portal's proxy allows them (Accept, Content-Type, …). */
    headers?: HeadersInit;
    /** Which of the user's accounts of the app; default: the most recently modified one. */
    connectedAccountId?: string;
  }
}

declare class ConnectPortal {
  static readonly RenderModes: { readonly MODAL: 'modal'; readonly INLINE: 'inline' };
  static readonly Layouts: { readonly WIDE: 'wide'; readonly NARROW: 'narrow' };
  static readonly version: string;

  /**
   * With {appKey, userId, hash}: creates a session; emits 'ready' on success, or 'error' (and every
   * method rejects) on failure. Without them: nothing happens until authenticate().
   */
  constructor(options?: ConnectPortal.Options);

  readonly eventEmitter: ConnectPortal.EventEmitter;

  /**
   * Paragon's authenticate(): creates the session from a JWT the host backend signed (RS256 or
   * ES256; sub = user id, aud = projectId, exp required). Emits 'ready' and resolves; on failure
   * emits 'error' and rejects (type 'invalid_user_token' for a refused token). Call it again with a
   * fresh token to replace the session.
   */
  authenticate(projectId: string, userToken: string): Promise<void>;
  /** Paragon's connect(): showApp(integrationType, 'modal'). */
  connect(integrationType: string): Promise<void>;
  /** Paragon's getUser(); `{authenticated: false}` without a session or when it is refused. */
  getUser(): Promise<ConnectPortal.User>;
  /** Paragon's event(): sends an App Event for the user (runs the functions it is mapped to). */
  event(name: string, payload?: Record<string, unknown>): Promise<ConnectPortal.EventReceipt>;

  /** Resolves once the iframe has loaded. containerId is required for 'inline'. */
  showApps(renderMode?: ConnectPortal.RenderMode, containerId?: string | null, layout?: ConnectPortal.Layout): Promise<void>;
  showApp(
    appName: string,
    renderMode?: ConnectPortal.RenderMode,
    containerId?: string | null,
    layout?: ConnectPortal.Layout,
  ): Promise<void>;
  /** The user's connected accounts of one app (embed path apps/<app>/accounts); the same events as showApp. */
  showConnectedAccounts(
    appName: string,
    renderMode?: ConnectPortal.RenderMode,
    containerId?: string | null,
    layout?: ConnectPortal.Layout,
  ): Promise<void>;
  /**
   * The functions the user can run (of `appName` only, when given). Resolves with the function
   * and the params once the user has filled one's form (the modal then closes); rejects with
   * type 'cancelled' when it is closed first.
   */
  showFunctions(
    renderMode?: ConnectPortal.RenderMode,
    containerId?: string | null,
    layout?: ConnectPortal.Layout,
    appName?: string,
  ): Promise<{ functionName: string; params: ConnectPortal.FunctionParams }>;
  /** The app's flows with the user's settings (GET api/v1/flows?app=<app>). */
  getFlows(appName: string): Promise<ConnectPortal.Flow[]>;
  /** Turns a flow on or off and saves its settings (PUT api/v1/flows/<app>/<flow>); resolves with the saved flow. */
  setFlow(appName: string, flowName: string, options: ConnectPortal.FlowUpdate): Promise<ConnectPortal.Flow>;
  /** Call from a click handler: it opens the connect popup synchronously. Resolves with the connectedAccountId. */
  /** `scopes`: extra scopes from the app's `optional_scopes` (others reject with `invalid_scope`). */
  connectApp(appName: string, options?: { scopes?: string[] }): Promise<string>;
  /** Call from a click handler: re-authorizes this account in the popup; it keeps its id (the resolved value). Signing in as another account rejects with type 'wrong_account'. */
  reconnectApp(appName: string, connectedAccountId: string, options?: { scopes?: string[] }): Promise<string>;
  /** connectedAccountId may be omitted when the user has exactly one account of the app. */
  disconnectApp(appName: string, connectedAccountId?: string): Promise<void>;
  isAppConnected(appName: string): Promise<boolean>;
  /** Sorted by modified_at, newest first. */
  getConnectedAccounts(appName: string): Promise<ConnectPortal.Account[]>;
  /** A function's signature: its params as JSON Schema. */
  getFunction(functionName: string): Promise<ConnectPortal.FunctionSignature>;
  /**
   * Shows the function's params form, pre-filled with `params`. Resolves with the params the
   * user submitted (valid for the schema), then closes the modal; rejects with type
   * 'cancelled' when the form is closed first. containerId is required for 'inline'.
   */
  showFunction(
    functionName: string,
    params?: ConnectPortal.FunctionParams,
    connectedAccountId?: string | null,
    renderMode?: ConnectPortal.RenderMode,
    containerId?: string | null,
    layout?: ConnectPortal.Layout,
  ): Promise<ConnectPortal.FunctionParams>;
  /**
   * Runs the function with the user's credentials. Resolves with either result shape (a
   * function that did not run is a result, not a rejection); rejects only when the portal
   * cannot be reached or the session is not accepted.
   */
  invokeFunction<T = unknown>(
    functionName: string,
    params?: ConnectPortal.FunctionParams,
    connectedAccountId?: string | null,
  ): Promise<ConnectPortal.FunctionResult<T>>;
  /**
   * An API request to the app with the user's credentials (Paragon's request()). `path` is
   * relative to the app's API base URL and may carry a query ("contacts?limit=2"). Resolves with
   * the parsed JSON (or text; null when empty) of a 2xx answer; rejects with an HttpError otherwise.
   */
  request<T = unknown>(app: string, path: string, options?: ConnectPortal.RequestOptions): Promise<T>;
  /** Closes the modal, removes inline iframes, settles pending connects and function forms, and stops listening for messages. */
  close(): Promise<void>;
}

interface Window {
  ConnectPortal: typeof ConnectPortal;
}
