//! Harness for starting imgmesh and its dependencies as real processes.
