// Type declarations for the Connect Portal host-page SDK (static/portal.js), version 0.1.0.
// portal.js is a classic script that defines one global, `ConnectPortal`.

declare namespace ConnectPortal {
  type RenderMode = 'modal' | 'inline';
  type Layout = 'wide' | 'narrow';
  type AuthType = 'oauth2' | 'api_key' | 'basic';

  interface Options {
    /** The host project's public app key. */
    appKey: string;
    /** The host's opaque id of the end user. */
    userId: string;
    /** HMAC-SHA256 of userId with the app secret, computed by the host backend. */
    hash: string;
    /** The portal's prefix URL, e.g. "https://portal.example/portal". Default: derived from portal.js's own src. */
    baseUrl?: string;
    /** When the browser blocks the connect popup, continue in this window (redirect mode). Default true. */
    redirectOnPopupBlocked?: boolean;
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
    | 'http_error'
    | 'connect_failed'
    | 'closed'
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
  }
}

declare class ConnectPortal {
  static readonly RenderModes: { readonly MODAL: 'modal'; readonly INLINE: 'inline' };
  static readonly Layouts: { readonly WIDE: 'wide'; readonly NARROW: 'narrow' };
  static readonly version: string;

  /** Creates a session; emits 'ready' on success, or 'error' (and every method rejects) on failure. */
  constructor(options: ConnectPortal.Options);

  readonly eventEmitter: ConnectPortal.EventEmitter;

  /** Resolves once the iframe has loaded. containerId is required for 'inline'. */
  showApps(renderMode?: ConnectPortal.RenderMode, containerId?: string, layout?: ConnectPortal.Layout): Promise<void>;
  showApp(
    appName: string,
    renderMode?: ConnectPortal.RenderMode,
    containerId?: string,
    layout?: ConnectPortal.Layout,
  ): Promise<void>;
  /** Call from a click handler: it opens the connect popup synchronously. Resolves with the connectedAccountId. */
  connectApp(appName: string): Promise<string>;
  /** connectedAccountId may be omitted when the user has exactly one account of the app. */
  disconnectApp(appName: string, connectedAccountId?: string): Promise<void>;
  isAppConnected(appName: string): Promise<boolean>;
  /** Sorted by modified_at, newest first. */
  getConnectedAccounts(appName: string): Promise<ConnectPortal.Account[]>;
  /** Closes the modal, removes inline iframes, settles pending connects and stops listening for messages. */
  close(): Promise<void>;
}

interface Window {
  ConnectPortal: typeof ConnectPortal;
}
