-- Kubeflow Pipelines PipelineVersion (pipelines.kubeflow.org/v2beta1). KFP's API server keeps
-- one condition of type PipelineVersionStatus whose reason is CREATING, READY or DELETING
-- (backend/src/apiserver/model: PipelineVersionStatus; storage/pipeline_store_kubernetes.go),
-- and writes it only for versions created through its own API. A version created through the
-- Kubernetes API, as Argo CD creates ours, was checked by KFP's validating webhook on admission
-- and never gets a status: Healthy, as KFP itself treats it (runs may use it).
-- A condition we do not know is Progressing, never Healthy.
local found = nil
if obj.status ~= nil and obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "PipelineVersionStatus" then
      found = condition
    end
  end
  if found == nil and #obj.status.conditions > 0 then
    return {status = "Progressing", message = "Unknown PipelineVersion conditions"}
  end
end
if found == nil then
  return {status = "Healthy", message = "Admitted by Kubeflow Pipelines (no status for versions created through the Kubernetes API)"}
end
if found.status == "False" then
  return {status = "Degraded", message = found.message or found.reason or "PipelineVersion is not usable"}
end
if found.status == "True" and found.reason == "READY" then
  return {status = "Healthy", message = found.message or "READY"}
end
return {status = "Progressing", message = found.message or found.reason or "PipelineVersion is not ready"}
