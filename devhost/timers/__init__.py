"""Timer triggers: schedules, their status and lock in storage, and the listeners."""
