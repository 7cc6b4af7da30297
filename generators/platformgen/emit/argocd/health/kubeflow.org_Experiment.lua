-- Katib Experiment (kubeflow.org/v1beta1). Katib v0.19.0 keeps one condition per type in
-- status.conditions (Created, Running, Restarting, Succeeded, Failed; pkg/apis/controller/
-- experiments/v1beta1/util.go): Succeeded or Failed True ends the experiment.
-- Anything else, or no status yet, is Progressing: never Healthy on a status we do not know.
local hs = {status = "Progressing", message = "Waiting for Katib to report the Experiment's status"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
for _, condition in ipairs(obj.status.conditions) do
  if condition.status == "True" then
    if condition.type == "Failed" then
      return {status = "Degraded", message = condition.message or "Experiment failed"}
    elseif condition.type == "Succeeded" then
      return {status = "Healthy", message = condition.message or "Experiment succeeded"}
    elseif condition.type == "Running" or condition.type == "Created" or condition.type == "Restarting" then
      hs.message = condition.message or condition.type
    end
  end
end
return hs
