"""OS readings: process RSS and its resettable peak, machine memory (cgroup-aware), PSI."""
