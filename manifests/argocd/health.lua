-- Argo CD health of the sinch-operator kinds (ConversationApp, Webhook, Template,
-- ProjectSettings), from the status the controller writes:
--   Suspended    paused (annotation conversation.sinch.com/paused: "true")
--   Progressing  not reconciled at this generation yet, being created, or waiting on
--                something that passes by itself (Sinch unavailable, an app not ready yet)
--   Degraded     a person must act: Sinch rejected the spec, a key, Secret, connection or
--                claim is missing or refused, a channel is failing, an observed object is gone
--   Healthy      Ready=True at the current generation
-- argocd-cm.yaml beside this file embeds it for the four kinds (tests/argocd/check.py).
local hs = {}
local annotations = obj.metadata.annotations or {}
if annotations["conversation.sinch.com/paused"] == "true" then
  hs.status = "Suspended"
  hs.message = "paused: nothing is written to Sinch until the annotation is removed"
  return hs
end
local status = obj.status
if status == nil or status.observedGeneration == nil
    or status.observedGeneration < (obj.metadata.generation or 0) then
  hs.status = "Progressing"
  hs.message = "waiting for the controller to reconcile this generation"
  return hs
end
local function condition(type)
  for _, c in ipairs(status.conditions or {}) do
    if c.type == type then return c end
  end
  return nil
end
local ready, synced = condition("Ready"), condition("Synced")
-- Reasons of Synced=False that no retry fixes.
local act = {
  Rejected = true, InvalidSpec = true, CannotPlan = true, ProjectMissing = true,
  CredentialsRefused = true, ReadRefused = true, ProjectNotFound = true,
  CredentialsMissing = true, CredentialsNotFound = true, InvalidCredentials = true,
  SecretNotFound = true, SecretForbidden = true, SecretNotLabelled = true, NotConverging = true, Conflict = true,
  NoConnection = true, ConnectionNotFound = true, ConnectionRefused = true,
  ConnectionAmbiguous = true, ProjectNotAllowed = true, SettingsNotAllowed = true,
  OwnedElsewhere = true, AdoptionRequired = true, AppNotOwned = true,
}
if synced ~= nil and synced.status == "False" and act[synced.reason] then
  hs.status = "Degraded"
  hs.message = synced.reason .. ": " .. (synced.message or "")
  return hs
end
if ready ~= nil and ready.status == "False"
    and (ready.reason == "ChannelFailing" or ready.reason == "NotFound") then
  hs.status = "Degraded"
  hs.message = ready.reason .. ": " .. (ready.message or "")
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "exists in Sinch"
  return hs
end
hs.status = "Progressing"
if synced ~= nil and synced.status == "False" then
  hs.message = synced.reason .. ": " .. (synced.message or "")
else
  hs.message = "not created in Sinch yet"
end
return hs
