/**
 * Tells Dealwatch which Opportunities changed (see DealwatchOpportunityTriggerHandler).
 */
trigger DealwatchOpportunityTrigger on Opportunity(after insert, after update) {
  DealwatchOpportunityTriggerHandler.run(
    Trigger.operationType,
    Trigger.new,
    Trigger.oldMap
  );
}
