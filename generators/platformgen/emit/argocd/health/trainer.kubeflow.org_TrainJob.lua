-- Kubeflow Trainer TrainJob (trainer.kubeflow.org/v1alpha1). Trainer v2.3.0 writes
-- metav1.Conditions of type Complete, Failed and Suspended (pkg/apis/trainer/v1alpha1/
-- trainjob_types.go); a TrainJob runs until Complete or Failed is True, like a batch/v1 Job.
-- Anything else, or no status yet, is Progressing: never Healthy on a status we do not know.
local hs = {status = "Progressing", message = "Waiting for the TrainJob's jobs to finish"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local suspended = nil
for _, condition in ipairs(obj.status.conditions) do
  if condition.status == "True" then
    if condition.type == "Failed" then
      return {status = "Degraded", message = condition.message or "TrainJob failed"}
    elseif condition.type == "Complete" then
      return {status = "Healthy", message = condition.message or "TrainJob completed"}
    elseif condition.type == "Suspended" then
      suspended = {status = "Suspended", message = condition.message or "TrainJob is suspended"}
    end
  end
end
return suspended or hs
