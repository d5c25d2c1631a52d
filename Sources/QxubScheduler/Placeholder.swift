public enum QxubSchedulerPlaceholder {}
