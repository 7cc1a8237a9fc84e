-- Argo CD health of a debugcap.io DebugSchedule, from the summary of its last finished run
-- (status.lastRun, docs/health.md). Only Argo CD's default libraries are used.
--   spec.suspend                                     -> Suspended
--   last run Failed, or a pod of it unhealthy        -> Degraded
--   no run finished yet, one capturing               -> Progressing
--   otherwise                                        -> Healthy
local hs = {status = "Healthy", message = "No run has finished yet"}
if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "spec.suspend is true"
  return hs
end
local status = obj.status or {}
local last = status.lastRun
if last == nil then
  if status.active ~= nil and #status.active > 0 then
    hs.status = "Progressing"
    hs.message = "The first run is capturing: " .. status.active[1].name
  end
  return hs
end
local pods = last.pods or 0
if last.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = "Last run " .. last.capture .. " failed: none of " .. pods .. " pod(s) captured"
  return hs
end
if last.unhealthy ~= nil and last.unhealthy > 0 then
  hs.status = "Degraded"
  hs.message = "Last run " .. last.capture .. ": " .. last.unhealthy .. " of " .. pods .. " pod(s) unhealthy"
  return hs
end
hs.message = "Last run " .. last.capture .. ": " .. (last.healthy or 0) .. " of " .. pods .. " pod(s) healthy"
return hs
