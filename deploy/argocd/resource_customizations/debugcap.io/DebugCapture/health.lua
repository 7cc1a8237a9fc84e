-- Argo CD health of a debugcap.io DebugCapture, from the conditions the operator writes
-- (docs/health.md). Only Argo CD's default libraries are used (no string library).
--   Stalled True (nothing stored, or the spec was edited after the run)  -> Degraded
--   Reconciling True, or no Ready condition yet                          -> Progressing
--   Ready True and Healthy False (a pod is unhealthy)                    -> Degraded
--   Ready True otherwise                                                 -> Healthy
local hs = {status = "Progressing", message = "Waiting for the debugcap operator to start the capture"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end

local function find(kind)
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local stalled = find("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.message
  return hs
end
local reconciling = find("Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = reconciling.message
  return hs
end
local ready = find("Ready")
if ready == nil or ready.status ~= "True" then
  if ready ~= nil then
    hs.message = ready.message
  end
  return hs
end
local healthy = find("Healthy")
if healthy ~= nil and healthy.status == "False" then
  hs.status = "Degraded"
  hs.message = healthy.message
  return hs
end
hs.status = "Healthy"
if healthy ~= nil and healthy.status == "True" then
  hs.message = healthy.message
else
  hs.message = ready.message
end
return hs
