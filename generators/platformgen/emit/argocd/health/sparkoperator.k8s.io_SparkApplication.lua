-- Spark Operator SparkApplication (sparkoperator.k8s.io/v1beta2). status.applicationState.state
-- is "" (new), SUBMITTED, RUNNING, SUCCEEDING, COMPLETED, FAILING, FAILED, SUBMISSION_FAILED,
-- PENDING_RERUN, INVALIDATING, UNKNOWN, SUSPENDING, SUSPENDED or RESUMING
-- (api/v1beta2/sparkapplication_types.go). It replaces the check Argo CD ships, which fails
-- with a Lua error on a status without applicationState and calls a RUNNING application with
-- its executors up Healthy: ours are batch jobs, Healthy only when COMPLETED, like a Job.
-- Anything else, or no status yet, is Progressing: never Healthy on a status we do not know.
local state = nil
if obj.status ~= nil and obj.status.applicationState ~= nil then
  state = obj.status.applicationState.state
end
local message = nil
if obj.status ~= nil and obj.status.applicationState ~= nil then
  message = obj.status.applicationState.errorMessage
end
if state == "COMPLETED" then
  return {status = "Healthy", message = "SparkApplication completed"}
end
if state == "FAILED" or state == "SUBMISSION_FAILED" or state == "FAILING" then
  return {status = "Degraded", message = message or ("SparkApplication " .. state)}
end
if state == "SUSPENDED" then
  return {status = "Suspended", message = "SparkApplication is suspended"}
end
if state == nil or state == "" then
  return {status = "Progressing", message = "Waiting for the Spark Operator to submit the application"}
end
return {status = "Progressing", message = "SparkApplication is " .. state}
