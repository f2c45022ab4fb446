/**
 * What an app imports to embed the panel: the component, the hook and the context provider.
 */
export { IntegrationsPanel, type IntegrationsPanelProps } from "./components/IntegrationsPanel.tsx";
export { ProviderSection } from "./components/ProviderSection.tsx";
export { AuditView } from "./components/AuditView.tsx";
export { FlowsView } from "./components/FlowsView.tsx";
export { SharedKeysView } from "./components/SharedKeysView.tsx";
export { UsageView } from "./components/UsageView.tsx";
export * as sharingApi from "./lib/sharingApi.ts";
export { ToastProvider, useToast } from "./components/Toasts.tsx";
export { type CredentialStatusMap, type UseUserCredentials, useUserCredentials } from "./hooks/useUserCredentials.ts";
export { CredentialsError, type ServiceStatus, type ValidationResult } from "./lib/credentialsApi.ts";
export { friendlyMessage } from "./lib/errorMessages.ts";
export { SupabaseProvider, useSupabaseClient } from "./supabaseContext.tsx";
export type { PanelClient } from "./lib/panelClient.ts";
